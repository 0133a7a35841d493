// Web Push in the browser, the parts any app needs: the server's VAPID key
// as `applicationServerKey`, and a browser's PushSubscription as the body of
// `POST /v1/push/subscriptions`.

import { HarkError, type ChatId, type WebPushSubscriptionBody } from './types';

/** The bytes of a base64url string (padding optional), e.g. `VapidKey.public_key`. */
export function base64UrlBytes(s: string): Uint8Array<ArrayBuffer> {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** Whether a subscription was made for this server key (a new key needs a new subscription). */
export function sameKey(a: ArrayBuffer | null | undefined, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.length) return false;
  const x = new Uint8Array(a);
  return x.every((v, i) => v === b[i]);
}

/** What the server stores of a browser's subscription: its endpoint and keys, nothing else. */
export function subscriptionBody(sub: PushSubscription): WebPushSubscriptionBody {
  const json = sub.toJSON();
  const p256dh = json.keys?.p256dh;
  const auth = json.keys?.auth;
  if (!json.endpoint || !p256dh || !auth) {
    throw new HarkError(0, 'invalid_field', 'the browser gave a push subscription without its keys');
  }
  return { kind: 'web_push', endpoint: json.endpoint, keys: { p256dh, auth } };
}

/** The tag of a chat's notification: one per chat, a burst updates it. The service worker uses the same. */
export function chatNotificationTag(chatId: ChatId): string {
  return `chat-${chatId}`;
}
