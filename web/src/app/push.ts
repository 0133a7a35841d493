// Push notifications on this device: asking the browser's permission (only
// when the person clicks "Turn on"), the browser's push subscription for the
// server's VAPID key, and its copy on the server (`/v1/push/subscriptions`),
// remembered per device so it can be turned off and is deleted on logout.

import { base64UrlBytes, HarkError, sameKey, subscriptionBody, type HarkApi } from '../hark-client';
import { activeRegistration, registerServiceWorker, serviceWorkerSupported } from './serviceWorker';

/**
 * `unsupported`: this browser cannot get pushes; `blocked`: the person
 * denied notifications in the browser; `off`; `working` while turning on or
 * off; `on`: the server has this browser's subscription.
 */
export type PushStatus = 'unsupported' | 'blocked' | 'off' | 'working' | 'on';

/** The server's copy of this device's subscription. */
interface Saved {
  id: string;
  endpoint: string;
}

/** The browser said no to (or was closed on) the permission prompt, and the like: a reason for the person. */
class Refused extends Error {}

/** The logout waits at most this long for the server to delete the subscription, and for the browser to drop it. */
const FORGET_MS = 3000;
/**
 * How long subscribing may take. A browser whose push service cannot be
 * reached (a blocked network, a Chromium build without one) may never
 * answer at all.
 */
const SUBSCRIBE_MS = 10_000;
const PROMPT_KEY = 'hark:push-prompt';

export function pushSupported(): boolean {
  return serviceWorkerSupported() && 'PushManager' in window && 'Notification' in window;
}

export class PushNotifications {
  status: PushStatus;
  /** Why turning on (or off) failed, in words for the person; null when it did not. */
  error: string | null = null;
  private readonly key: string;

  constructor(
    private readonly api: HarkApi,
    origin: string,
    deviceId: number,
    private readonly changed: () => void,
  ) {
    this.key = `hark:${origin}:device:${deviceId}:push`;
    if (!pushSupported()) this.status = 'unsupported';
    else if (Notification.permission === 'denied') this.status = 'blocked';
    else this.status = this.saved() && Notification.permission === 'granted' ? 'on' : 'off';
  }

  /**
   * At start: keep the server's copy in step with the browser, which may
   * have replaced the subscription, dropped it, or lost the permission.
   */
  async start(): Promise<void> {
    if (this.status === 'unsupported') return;
    void registerServiceWorker();
    if (!this.saved()) return;
    if (Notification.permission !== 'granted') {
      await this.forget();
      this.set(Notification.permission === 'denied' ? 'blocked' : 'off', null);
      return;
    }
    try {
      await this.subscribe();
    } catch {
      // Offline or the like: the server keeps what it had; tried again at the next start.
    }
  }

  /** Ask for the permission (the browser's prompt), subscribe, and give the server the subscription. */
  async enable(): Promise<void> {
    if (this.status === 'unsupported' || this.status === 'working') return;
    this.set('working', null);
    try {
      const permission = await Notification.requestPermission();
      if (permission === 'denied') return this.set('blocked', null);
      if (permission !== 'granted') throw new Refused('Notifications were not allowed.');
      await this.subscribe();
      this.set('on', null);
    } catch (e) {
      this.set(Notification.permission === 'denied' ? 'blocked' : 'off', reason(e));
    }
  }

  /** Stop notifications on this device: the server forgets the subscription, the browser drops it. */
  async disable(): Promise<void> {
    if (this.status === 'working') return;
    this.set('working', null);
    await this.forget();
    this.set(Notification.permission === 'denied' ? 'blocked' : 'off', null);
  }

  /**
   * Best effort, never throws (logging out): delete the server's copy
   * (waiting at most 3 s), unsubscribe the browser, forget the record. Once
   * unsubscribed, the push service refuses the server's pushes anyway.
   */
  async forget(): Promise<void> {
    const saved = this.saved();
    this.save(null);
    if (saved) await within(this.api.removePushSubscription(saved.id), FORGET_MS).catch(() => {});
    if (this.status === 'unsupported') return;
    const drop = async () => {
      const reg = await registerServiceWorker();
      const sub = await reg?.pushManager.getSubscription();
      await sub?.unsubscribe();
    };
    await within(drop(), FORGET_MS).catch(() => {
      // Nothing to drop, or the browser does not answer.
    });
  }

  /** Whether the person closed the "Turn on notifications" banner (in this browser). */
  get promptDismissed(): boolean {
    try {
      return localStorage.getItem(PROMPT_KEY) === 'dismissed';
    } catch {
      return false;
    }
  }

  dismissPrompt(): void {
    try {
      localStorage.setItem(PROMPT_KEY, 'dismissed');
    } catch {
      // Storage disabled: the banner comes back next time.
    }
    this.changed();
  }

  /**
   * The browser's subscription for the server's current key (made, or
   * replaced when the key changed), registered with the server (which
   * answers the existing row for an endpoint it has).
   */
  private async subscribe(): Promise<void> {
    let key: Uint8Array<ArrayBuffer>;
    try {
      key = base64UrlBytes((await this.api.vapidKey()).public_key);
    } catch (e) {
      if (e instanceof HarkError && e.status === 404) throw new Refused('This server does not send push notifications.');
      throw e;
    }
    const reg = await activeRegistration();
    if (!reg) throw new Refused('This browser could not start the notification service (service worker) for Hark.');
    let sub = await within(reg.pushManager.getSubscription(), SUBSCRIBE_MS).catch(() => null);
    if (sub && !sameKey(sub.options.applicationServerKey, key)) {
      await sub.unsubscribe().catch(() => false);
      sub = null;
    }
    const created = !sub;
    if (!sub) {
      try {
        sub = await within(reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }), SUBSCRIBE_MS);
      } catch (e) {
        throw new Refused(
          `This browser could not subscribe to push messages (${e instanceof Error ? e.message : String(e)}). ` +
            'New messages still show here while Hark is open.',
        );
      }
    }
    try {
      const info = await this.api.addPushSubscription(subscriptionBody(sub));
      this.save({ id: info.id, endpoint: info.endpoint });
    } catch (e) {
      if (created) await sub.unsubscribe().catch(() => false);
      if (e instanceof HarkError && e.code === 'url_not_allowed') throw new Refused(`The server cannot reach this browser's push service: ${e.message}`);
      if (e instanceof HarkError && e.code === 'too_many_subscriptions') {
        throw new Refused('This device has too many push subscriptions on the server. Turn notifications off and on again.');
      }
      if (e instanceof HarkError && e.status === 404) throw new Refused('This server does not send push notifications.');
      throw e;
    }
  }

  private set(status: PushStatus, error: string | null): void {
    this.status = status;
    this.error = error;
    this.changed();
  }

  private saved(): Saved | null {
    try {
      const raw = localStorage.getItem(this.key);
      const v = raw ? (JSON.parse(raw) as Saved) : null;
      return v && typeof v.id === 'string' ? v : null;
    } catch {
      return null;
    }
  }

  private save(v: Saved | null): void {
    try {
      if (v) localStorage.setItem(this.key, JSON.stringify(v));
      else localStorage.removeItem(this.key);
    } catch {
      // Storage disabled: the subscription works, but is not turned off on logout.
    }
  }
}

class TimedOut extends Error {}

/** `p`, or a rejection once `ms` have passed without an answer. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimedOut(`its push service did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function reason(e: unknown): string {
  if (e instanceof Refused) return e.message;
  if (e instanceof HarkError) return `Could not turn on notifications: ${e.message}`;
  return `Could not turn on notifications: ${e instanceof Error ? e.message : String(e)}`;
}
