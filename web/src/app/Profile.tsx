// Profiles in the UI: people's photos as avatars (initials when they have
// none, or hide it from this user), and Settings → Profile: one's photo
// (chosen, cropped to a square here, uploaded, then made the photo), the
// about line, and who sees each.

import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { ABOUT_MAX_CHARS, HarkError, type MyProfile, type User, type Visibility } from '../hark-client';
import { isDeletedAccount, type AppStore } from './store';
import { Avatar, CloseIcon, errorText } from './ui';

/** Avatars larger than this show the large photo (640 px), others the small one (128 px). */
const LARGE_FROM = 64;

/**
 * A person's avatar: their photo when they have one this user may see,
 * else their initials on their colour (also while the photo loads).
 * `user` null (a group, nobody known): initials, or the group icon.
 */
export function PersonAvatar(props: {
  store: AppStore;
  user: User | null | undefined;
  name: string;
  /** The colour's seed when there is no user (see `Avatar`). */
  id?: number;
  size?: number;
  group?: boolean;
}) {
  const { store, user, name } = props;
  const size = props.size ?? 49;
  const url = user && !props.group && !isDeletedAccount(user) ? store.profiles.photoUrl(user.id, size > LARGE_FROM ? 'large' : 'small') : null;
  const [broken, setBroken] = useState<string | null>(null);
  if (url && url !== broken) {
    return (
      <img
        class="avatar avatar-photo"
        src={url}
        width={size}
        height={size}
        style={{ width: `${size}px`, height: `${size}px` }}
        alt=""
        aria-hidden="true"
        draggable={false}
        data-testid="avatar-photo"
        data-user-id={user!.id}
        onError={() => setBroken(url)}
      />
    );
  }
  return <Avatar name={name} id={user?.id ?? props.id ?? 0} size={size} group={props.group} testid={props.group ? undefined : 'avatar-initials'} />;
}

const VISIBILITY: [Visibility, string][] = [
  ['everyone', 'Everyone'],
  ['contacts', 'My contacts'],
  ['nobody', 'Nobody'],
];

/** Characters as the server counts them (code points: an emoji is one). */
export function charCount(text: string): number {
  return Array.from(text).length;
}

/** Settings → Profile: the photo (change, remove), the about line, who sees each. */
export function ProfileCard(props: { store: AppStore }) {
  const { store } = props;
  const mine = store.profiles.mine;
  const [loadError, setLoadError] = useState<string | null>(null);
  const [about, setAbout] = useState<string | null>(null);
  const [busy, setBusy] = useState<'about' | 'photo' | 'remove' | 'about_visibility' | 'photo_visibility' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [file, setFile] = useState<File | null>(null);
  const picker = useRef<HTMLInputElement>(null);

  useEffect(() => {
    store.profiles.loadMine().catch((e) => {
      if (store.refused(e)) return;
      setLoadError(e instanceof HarkError && e.status === 404 ? "This server doesn't offer profiles." : errorText(e, 'profile'));
    });
  }, [store]);
  // The field starts from the server's line (and follows it until edited).
  const aboutText = about ?? mine?.about ?? '';
  const count = charCount(aboutText);
  const tooLong = count > ABOUT_MAX_CHARS;
  const aboutChanged = mine !== null && aboutText.trim() !== mine.about;

  async function change(what: NonNullable<typeof busy>, f: () => Promise<MyProfile>, said?: string): Promise<boolean> {
    setBusy(what);
    setError(null);
    setDone(null);
    try {
      store.profiles.setMine(await f());
      if (said) setDone(said);
      return true;
    } catch (e) {
      if (store.refused(e)) return false;
      setError(refusal(e, what));
      return false;
    } finally {
      setBusy(null);
    }
  }

  const saveAbout = async (e: Event) => {
    e.preventDefault();
    if (tooLong || !aboutChanged) return;
    const text = aboutText.replace(/\s+/g, ' ').trim();
    if (await change('about', () => store.api.updateProfile({ about: text }), text ? 'About saved.' : 'About cleared.')) setAbout(null);
  };
  const choose = (key: 'about_visibility' | 'photo_visibility', value: Visibility) =>
    void change(key, () => store.api.updateProfile({ [key]: value }));
  const remove = async () => {
    const ok = await store.ask({ title: 'Remove your profile photo?', body: 'People see your initials instead.', confirm: 'Remove', danger: true });
    if (ok) await change('remove', () => store.api.removePhoto(), 'Photo removed.');
  };
  const upload = async (square: Blob) => {
    const ok = await change(
      'photo',
      async () => {
        const media = await store.api.upload(square, { kind: 'image', name: square.type === 'image/png' ? 'photo.png' : 'photo.jpg' });
        return store.api.setPhoto(media.id);
      },
      'Photo updated.',
    );
    if (ok) setFile(null);
    return ok;
  };

  return (
    <section class="settings-card profile-card" data-testid="profile-card" data-photo={mine ? (mine.photo ? 'true' : 'false') : undefined}>
      <h3>Profile</h3>
      {mine === null && !loadError && <p class="settings-note">Loading…</p>}
      {loadError && (
        <p class="form-error settings-error" role="alert" data-testid="profile-load-error">
          {loadError}
        </p>
      )}
      {mine !== null && (
        <>
          <div class="profile-photo-row">
            <PersonAvatar store={store} user={store.me} name={store.me.display_name} size={96} />
            <div class="profile-photo-actions">
              <input
                ref={picker}
                type="file"
                accept="image/*"
                class="sr-only"
                tabIndex={-1}
                aria-hidden="true"
                data-testid="profile-photo-input"
                onChange={(e) => {
                  const f = e.currentTarget.files?.[0];
                  e.currentTarget.value = '';
                  if (f) {
                    setError(null);
                    setDone(null);
                    setFile(f);
                  }
                }}
              />
              <button class="secondary small" data-testid="profile-photo-change" disabled={busy !== null} onClick={() => picker.current?.click()}>
                {mine.photo ? 'Change photo' : 'Add photo'}
              </button>
              {mine.photo && (
                <button class="secondary small danger" data-testid="profile-photo-remove" disabled={busy !== null} onClick={() => void remove()}>
                  {busy === 'remove' ? 'Removing…' : 'Remove photo'}
                </button>
              )}
            </div>
          </div>
          <form class="settings-form profile-about" onSubmit={saveAbout} data-testid="profile-about-form">
            <label class="settings-field">
              <span>About</span>
              <input
                name="about"
                dir="auto"
                autocomplete="off"
                placeholder="A line about you: “At work”, “Available”…"
                value={aboutText}
                data-testid="profile-about"
                aria-describedby="profile-about-count"
                aria-invalid={tooLong ? 'true' : undefined}
                onInput={(e) => setAbout(e.currentTarget.value)}
              />
            </label>
            <div class="settings-actions profile-about-actions">
              <span id="profile-about-count" class={`about-count ${tooLong ? 'over' : ''}`} data-testid="profile-about-count" aria-live="polite">
                {tooLong ? `${count - ABOUT_MAX_CHARS} too many · ` : ''}
                {count}/{ABOUT_MAX_CHARS}
              </span>
              <button class="primary" type="submit" disabled={busy !== null || tooLong || !aboutChanged} data-testid="profile-about-save">
                {busy === 'about' ? 'Saving…' : 'Save'}
              </button>
            </div>
          </form>
          {(['photo_visibility', 'about_visibility'] as const).map((key) => (
            <label class="settings-row" key={key}>
              <span>{key === 'photo_visibility' ? 'Who sees my photo' : 'Who sees my about'}</span>
              <select value={mine[key]} disabled={busy === key} data-testid={`profile-${key}`} onChange={(e) => choose(key, e.currentTarget.value as Visibility)}>
                {VISIBILITY.map(([v, label]) => (
                  <option value={v} key={v}>
                    {label}
                  </option>
                ))}
              </select>
            </label>
          ))}
          <p class="settings-note">Those who can't see your photo see your initials. Nobody you blocked sees either.</p>
          {done && (
            <p class="settings-success" role="status" data-testid="profile-done">
              {done}
            </p>
          )}
          {error && !file && (
            <p class="form-error settings-error" role="alert" data-testid="profile-error">
              {error}
            </p>
          )}
        </>
      )}
      {file && <PhotoCropper file={file} busy={busy === 'photo'} error={error} onCancel={() => { setFile(null); setError(null); }} onCrop={upload} />}
    </section>
  );
}

/** A refused profile change in words. */
function refusal(e: unknown, what: string): string {
  if (e instanceof HarkError) {
    if (what === 'photo' && (e.code === 'invalid_field' || e.code === 'not_found')) return "The server couldn't use this picture as a photo. Try another image.";
    if (what === 'photo' && e.code === 'too_large') return 'This picture is too large to upload.';
    if (what === 'about' && e.code === 'invalid_field') return `The about line must be one line of at most ${ABOUT_MAX_CHARS} characters.`;
  }
  return errorText(e, 'profile');
}

/** The side of a cropped photo, at most (the server keeps 640 px). */
const CROP_SIDE = 640;
/** How far in the zoom goes: the frame's side down to a quarter of the picture's shorter side. */
const MAX_ZOOM = 4;

interface Crop {
  /** The frame's centre, in the picture's pixels. */
  cx: number;
  cy: number;
  zoom: number;
}

/**
 * The crop step: the picture with a square frame to move (drag it, or the
 * arrow keys) and zoom (the slider, the mouse wheel, or + and −); the part
 * inside becomes a square PNG (when the picture has transparency) or JPEG
 * of at most 640 px, handed to `onCrop`.
 */
function PhotoCropper(props: { file: File; busy: boolean; error: string | null; onCancel: () => void; onCrop: (square: Blob) => Promise<boolean> }) {
  const [img, setImg] = useState<HTMLImageElement | null>(null);
  const [url, setUrl] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  const [crop, setCrop] = useState<Crop | null>(null);
  const [making, setMaking] = useState(false);
  const [cropError, setCropError] = useState<string | null>(null);
  const drag = useRef<{ pointer: number; x: number; y: number; cx: number; cy: number } | null>(null);
  const frame = useRef<HTMLDivElement>(null);
  const box = useRef<HTMLDivElement>(null);
  const [fit, setFit] = useState(360);

  useEffect(() => {
    const u = URL.createObjectURL(props.file);
    setUrl(u);
    setFailed(false);
    setImg(null);
    const image = new Image();
    image.onload = () => {
      if (!image.naturalWidth || !image.naturalHeight) return setFailed(true);
      setImg(image);
      setCrop({ cx: image.naturalWidth / 2, cy: image.naturalHeight / 2, zoom: 1 });
    };
    image.onerror = () => setFailed(true);
    image.src = u;
    return () => URL.revokeObjectURL(u);
  }, [props.file]);

  // The stage fits the dialog's width (a phone's is narrower).
  useLayoutEffect(() => {
    const measure = () => setFit(Math.max(160, Math.min(360, (box.current?.clientWidth ?? 360) - 32)));
    measure();
    window.addEventListener('resize', measure);
    return () => window.removeEventListener('resize', measure);
  }, [img]);

  useLayoutEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !props.busy) {
        e.stopPropagation();
        props.onCancel();
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => document.removeEventListener('keydown', onKey, true);
  }, [props.busy, props.onCancel]);

  useEffect(() => {
    if (img) frame.current?.focus();
  }, [img]);

  const W = img?.naturalWidth ?? 1;
  const H = img?.naturalHeight ?? 1;
  const scale = Math.min(fit / W, fit / H);
  const sideOf = (zoom: number) => Math.min(W, H) / zoom;
  /** The crop with its frame kept inside the picture. */
  const clamp = (c: Crop): Crop => {
    const zoom = Math.max(1, Math.min(MAX_ZOOM, c.zoom));
    const half = sideOf(zoom) / 2;
    return { zoom, cx: Math.max(half, Math.min(W - half, c.cx)), cy: Math.max(half, Math.min(H - half, c.cy)) };
  };
  const update = (f: (c: Crop) => Crop) => setCrop((c) => (c ? clamp(f(c)) : c));

  const onPointerDown = (e: PointerEvent) => {
    if (!crop || props.busy) return;
    e.preventDefault();
    (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
    drag.current = { pointer: e.pointerId, x: e.clientX, y: e.clientY, cx: crop.cx, cy: crop.cy };
    frame.current?.focus();
  };
  const onPointerMove = (e: PointerEvent) => {
    const d = drag.current;
    if (!d || d.pointer !== e.pointerId) return;
    update((c) => ({ ...c, cx: d.cx + (e.clientX - d.x) / scale, cy: d.cy + (e.clientY - d.y) / scale }));
  };
  const onPointerUp = (e: PointerEvent) => {
    if (drag.current?.pointer === e.pointerId) drag.current = null;
  };
  const onWheel = (e: WheelEvent) => {
    if (!crop) return;
    e.preventDefault();
    update((c) => ({ ...c, zoom: c.zoom * Math.exp(-e.deltaY / 500) }));
  };
  const onKeyDown = (e: KeyboardEvent) => {
    const step = sideOf(crop?.zoom ?? 1) * (e.shiftKey ? 0.2 : 0.05);
    const moves: Record<string, [number, number]> = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) {
      e.preventDefault();
      const [dx, dy] = moves[e.key];
      update((c) => ({ ...c, cx: c.cx + dx, cy: c.cy + dy }));
    } else if (e.key === '+' || e.key === '=') {
      e.preventDefault();
      update((c) => ({ ...c, zoom: c.zoom * 1.1 }));
    } else if (e.key === '-' || e.key === '_') {
      e.preventDefault();
      update((c) => ({ ...c, zoom: c.zoom / 1.1 }));
    }
  };

  async function save() {
    if (!img || !crop) return;
    setMaking(true);
    setCropError(null);
    try {
      const square = await cropToSquare(img, crop.cx, crop.cy, sideOf(crop.zoom));
      await props.onCrop(square);
    } catch (e) {
      setCropError(e instanceof Error ? e.message : 'This browser could not crop the picture.');
    } finally {
      setMaking(false);
    }
  }

  const side = sideOf(crop?.zoom ?? 1);
  const frameStyle = crop
    ? { left: `${(crop.cx - side / 2) * scale}px`, top: `${(crop.cy - side / 2) * scale}px`, width: `${side * scale}px`, height: `${side * scale}px` }
    : undefined;
  const working = props.busy || making;
  return (
    <div class="modal-backdrop" onClick={() => !working && props.onCancel()}>
      <div class="modal crop-dialog" role="dialog" aria-modal="true" aria-labelledby="crop-title" data-testid="crop-dialog" ref={box} onClick={(e) => e.stopPropagation()}>
        <header class="modal-header">
          <button class="icon-btn" aria-label="Cancel" data-testid="crop-cancel" disabled={working} onClick={props.onCancel}>
            <CloseIcon />
          </button>
          <h2 id="crop-title">Crop your photo</h2>
        </header>
        <div class="crop-body">
          {failed ? (
            <p class="form-error" role="alert" data-testid="crop-error">
              This file isn't a picture this browser can open. Choose a JPEG, PNG, WebP or GIF image.
            </p>
          ) : !img || !url || !crop ? (
            <p class="settings-note">Opening the picture…</p>
          ) : (
            <>
              <p class="crop-hint" id="crop-hint">
                Drag the square to choose what shows; zoom to show less. People see it as a circle.
              </p>
              <div
                class="crop-stage"
                style={{ width: `${W * scale}px`, height: `${H * scale}px` }}
                data-testid="crop-stage"
                onPointerDown={onPointerDown}
                onPointerMove={onPointerMove}
                onPointerUp={onPointerUp}
                onPointerCancel={onPointerUp}
                onWheel={onWheel}
              >
                <img src={url} alt="" draggable={false} width={Math.round(W * scale)} height={Math.round(H * scale)} />
                <div
                  class="crop-frame"
                  ref={frame}
                  style={frameStyle}
                  tabIndex={0}
                  role="group"
                  aria-roledescription="crop frame"
                  aria-label="The part of the picture to use: the arrow keys move it, + and − zoom"
                  aria-describedby="crop-hint"
                  data-testid="crop-frame"
                  onKeyDown={onKeyDown}
                >
                  <span class="crop-circle" aria-hidden="true" />
                </div>
              </div>
              <label class="crop-zoom">
                <span>Zoom</span>
                <input
                  type="range"
                  min={1}
                  max={MAX_ZOOM}
                  step={0.01}
                  value={crop.zoom}
                  disabled={working}
                  data-testid="crop-zoom"
                  onInput={(e) => {
                    const zoom = Number(e.currentTarget.value);
                    update((c) => ({ ...c, zoom }));
                  }}
                />
              </label>
            </>
          )}
          {(cropError ?? props.error) && (
            <p class="form-error" role="alert" data-testid="crop-upload-error">
              {cropError ?? props.error}
            </p>
          )}
        </div>
        <footer class="crop-footer">
          <button class="secondary" data-testid="crop-cancel-button" disabled={working} onClick={props.onCancel}>
            Cancel
          </button>
          <button class="primary" data-testid="crop-save" disabled={working || !img || failed} onClick={() => void save()}>
            {working ? 'Uploading…' : 'Use this photo'}
          </button>
        </footer>
      </div>
    </div>
  );
}

/**
 * The square of `side` picture pixels centred on (`cx`, `cy`), at most
 * CROP_SIDE px: a PNG when any of it is see-through, else a JPEG.
 */
async function cropToSquare(img: HTMLImageElement, cx: number, cy: number, side: number): Promise<Blob> {
  const out = Math.max(1, Math.min(CROP_SIDE, Math.round(side)));
  const canvas = document.createElement('canvas');
  canvas.width = out;
  canvas.height = out;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new HarkError(0, 'internal', 'This browser cannot crop pictures.');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(img, cx - side / 2, cy - side / 2, side, side, 0, 0, out, out);
  const pixels = ctx.getImageData(0, 0, out, out).data;
  let opaque = true;
  for (let i = 3; i < pixels.length; i += 4) {
    if (pixels[i] < 255) {
      opaque = false;
      break;
    }
  }
  const type = opaque ? 'image/jpeg' : 'image/png';
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, type, 0.9));
  if (!blob) throw new HarkError(0, 'internal', 'This browser could not make the cropped picture.');
  return blob;
}
