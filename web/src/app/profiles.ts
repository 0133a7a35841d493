// People's profiles beyond their names: the about line and the photo, as
// the server lets this user see them (`GET /v1/users/{id}/profile`: null
// when unset, or hidden by its owner's choice or a block), and one's own
// with who sees it (`GET /v1/me/profile`).
//
// A profile is asked for when someone is first shown, and again when shown
// after a minute (or at once when their chat or contact info opens, and
// after a reconnection): never on every render. A photo's bytes are fetched
// with the token (`GET /v1/users/{id}/photo`) and kept as one blob: URL per
// (person, size, version): a new photo has a new version, so it is fetched
// once, and the old one's URL let go.

import { HarkError, type HarkApi, type MyProfile, type PhotoSize, type Profile, type UserId } from '../hark-client';

/** A profile shown after this long is asked for again. */
const FRESH_MS = 60_000;
/** A profile or photo that could not be fetched (not a 404) is tried again after this long. */
const RETRY_MS = 15_000;
/** `refresh` asks again only when the last answer is older than this (a chat and its info opened together ask once). */
const REFRESH_MS = 500;
/** Profile requests in flight at most (a long chat list asks for many at start). */
const AT_ONCE = 4;
/** Photos kept (the least recently shown go first). */
const KEEP_PHOTOS = 400;
/** An old photo's URL is let go this long after a newer one took its place (an element may still show it). */
const RELEASE_MS = 10_000;

interface Known {
  profile: Profile | null;
  /** When the server last answered (0: never); a failed ask counts as an answer RETRY_MS old to be. */
  at: number;
  loading: boolean;
}

interface Photo {
  url: string | null;
  /** The fetch failed: 404 (none, or hidden by now) or another error (tried again after RETRY_MS). */
  failed: 'gone' | 'error' | null;
  at: number;
}

export class Profiles {
  /** My own profile and who sees it; null until the server answered. */
  mine: MyProfile | null = null;
  private known = new Map<UserId, Known>();
  /** By `${user}/${size}/${version}`, in use order (a Map keeps insertion order). */
  private photos = new Map<string, Photo>();
  private queue: UserId[] = [];
  private inFlight = 0;

  constructor(
    private readonly api: HarkApi,
    private readonly me: UserId,
    /** Something changed: the app renders again. */
    private readonly changed: () => void,
  ) {}

  /**
   * What this user may see of `id`'s profile: what is known now (null
   * before the first answer); asks the server when it is unknown or was
   * answered more than a minute ago.
   */
  of(id: UserId): Profile | null {
    const k = this.known.get(id);
    if (!k) this.load(id);
    else if (!k.loading && Date.now() - k.at > FRESH_MS) this.load(id);
    return k?.profile ?? null;
  }

  /** Ask for `id`'s profile again now (their chat or contact info just opened), unless it was just answered. */
  refresh(id: UserId): void {
    const k = this.known.get(id);
    if (k?.loading || (k && Date.now() - k.at < REFRESH_MS)) return;
    this.load(id);
  }

  /** Everything known may be out of date (the connection was down): asked for again as people are shown. */
  stale(): void {
    for (const k of this.known.values()) k.at = 0;
  }

  /** My own profile, from the server. */
  async loadMine(): Promise<MyProfile> {
    const mine = await this.api.myProfile();
    this.setMine(mine);
    return mine;
  }

  /** My profile as the server answered a change to it. */
  setMine(mine: MyProfile): void {
    this.mine = mine;
    this.known.set(this.me, { profile: { user_id: this.me, about: mine.about || null, photo: mine.photo }, at: Date.now(), loading: false });
    this.changed();
  }

  /**
   * A blob: URL of `id`'s photo in `size`, when they have one this user
   * may see: null without one, and while it loads (the caller shows
   * initials meanwhile).
   */
  photoUrl(id: UserId, size: PhotoSize): string | null {
    const version = this.of(id)?.photo;
    if (!version) return null;
    const key = `${id}/${size}/${version}`;
    const kept = this.photos.get(key);
    if (kept) {
      this.photos.delete(key);
      this.photos.set(key, kept);
      if (kept.failed === 'error' && Date.now() - kept.at > RETRY_MS) this.fetchPhoto(id, size, key, kept);
      return kept.url ?? (kept.failed ? null : this.older(`${id}/${size}/`, key));
    }
    const entry: Photo = { url: null, failed: null, at: Date.now() };
    this.photos.set(key, entry);
    this.fetchPhoto(id, size, key, entry);
    this.trim();
    return this.older(`${id}/${size}/`, key);
  }

  /** While a new photo loads, the one before it (no flash of initials in between). */
  private older(prefix: string, key: string): string | null {
    for (const [k, photo] of this.photos) if (k !== key && k.startsWith(prefix) && photo.url) return photo.url;
    return null;
  }

  private fetchPhoto(id: UserId, size: PhotoSize, key: string, entry: Photo): void {
    entry.failed = null;
    entry.at = Date.now();
    this.api.photoBlob(id, size).then(
      (blob) => {
        if (this.photos.get(key) !== entry) return;
        entry.url = URL.createObjectURL(blob);
        this.releaseOthers(`${id}/${size}/`, key);
        this.changed();
      },
      (e) => {
        if (this.photos.get(key) !== entry) return;
        const gone = e instanceof HarkError && e.status === 404;
        entry.failed = gone ? 'gone' : 'error';
        entry.at = Date.now();
        // Hidden or removed since the profile was read: read it again.
        if (gone) {
          this.releaseOthers(`${id}/${size}/`, key);
          this.refresh(id);
        }
        this.changed();
      },
    );
  }

  /** Let go of `prefix`'s other versions (a newer photo took their place). */
  private releaseOthers(prefix: string, keep: string): void {
    for (const [key, photo] of this.photos) {
      if (key === keep || !key.startsWith(prefix)) continue;
      this.photos.delete(key);
      if (photo.url) {
        const url = photo.url;
        setTimeout(() => URL.revokeObjectURL(url), RELEASE_MS);
      }
    }
  }

  private trim(): void {
    for (const [key, photo] of this.photos) {
      if (this.photos.size <= KEEP_PHOTOS) break;
      this.photos.delete(key);
      if (photo.url) {
        const url = photo.url;
        setTimeout(() => URL.revokeObjectURL(url), RELEASE_MS);
      }
    }
  }

  private load(id: UserId): void {
    const k = this.known.get(id) ?? { profile: null, at: 0, loading: false };
    if (k.loading) return;
    k.loading = true;
    this.known.set(id, k);
    this.queue.push(id);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < AT_ONCE && this.queue.length > 0) {
      const id = this.queue.shift()!;
      this.inFlight++;
      void this.fetchOne(id).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async fetchOne(id: UserId): Promise<void> {
    const k = this.known.get(id)!;
    try {
      if (id === this.me) {
        const mine = await this.api.myProfile();
        this.mine = mine;
        k.profile = { user_id: id, about: mine.about || null, photo: mine.photo };
      } else {
        k.profile = await this.api.profile(id);
      }
      k.at = Date.now();
    } catch (e) {
      if (e instanceof HarkError && e.status === 404) {
        // Nobody (any more), or a server without profiles: nothing to show.
        k.profile = null;
        k.at = Date.now();
      } else {
        // Asked again once RETRY_MS have passed; what was known stays meanwhile.
        k.at = Date.now() - FRESH_MS + RETRY_MS;
      }
    } finally {
      k.loading = false;
    }
    this.changed();
  }
}
