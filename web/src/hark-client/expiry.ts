// Disappearing messages (docs/protocol.md): a message sent while its chat's
// timer is on carries `expires_at`; once that passes, the server removes its
// content, marks it `expired` and sends `message_expired` to every member.
// A client stops showing it when either happens, whichever comes first.

import type { Message } from './types';

/**
 * Whether `m` has disappeared: the server says so (`expired`), or its
 * `expires_at` has passed by this device's clock (the server sweeps every
 * few seconds, so its `message_expired` may come a little later).
 */
export function hasDisappeared(m: Pick<Message, 'expires_at' | 'expired'>, now: number = Date.now()): boolean {
  return !!m.expired || (m.expires_at != null && m.expires_at <= now);
}
