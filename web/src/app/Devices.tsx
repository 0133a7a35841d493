// Other people's devices in encrypted chats: the list of a contact's
// devices with each one's key fingerprint and whether this device verified
// it, verifying one by emoji (the dialog both sides see) or marking it
// verified after comparing the fingerprint by another channel, and the
// warning a chat shows when a contact you verified has a device you have
// not. The crypto itself is web/src/crypto (verify.ts).

import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { fingerprintGroups, harkUserId, type ContactDevice, type VerificationView } from '../crypto';
import type { AppStore, ChatModel } from './store';

/** A shield with a tick: verified. */
export function VerifiedIcon(props: { size?: number; title?: string }) {
  const size = props.size ?? 16;
  return (
    <svg class="verified-icon" viewBox="0 0 24 24" width={size} height={size} aria-hidden={props.title ? undefined : 'true'} role={props.title ? 'img' : undefined} aria-label={props.title}>
      <path fill="currentColor" d="M12 1 3 5v6c0 5.55 3.84 10.74 9 12 5.16-1.26 9-6.45 9-12V5l-9-4zm-2 16-4-4 1.41-1.41L10 14.17l6.59-6.59L18 9l-8 8z" />
    </svg>
  );
}

/** A shield with an exclamation mark: something to check. */
function WarningIcon(props: { size?: number }) {
  const size = props.size ?? 20;
  return (
    <svg viewBox="0 0 24 24" width={size} height={size} aria-hidden="true">
      <path fill="currentColor" d="M12 1 3 5v6c0 5.55 3.84 10.74 9 12 5.16-1.26 9-6.45 9-12V5l-9-4zm1 16h-2v-2h2v2zm0-4h-2V7h2v6z" />
    </svg>
  );
}

/**
 * The devices of `user`, each with its key and whether this device
 * verified it, and what to do about one that is not.
 */
export function ContactDevices(props: { store: AppStore; user: number; name: string }) {
  const { store, user, name } = props;
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    store.e2e.loadDevices([user]);
  }, [store, user]);
  const devices = store.devicesOf(user);
  const state = store.e2e.status.state;
  const unavailable = state !== 'ready' && state !== 'loading';
  const run = async (f: () => Promise<unknown>) => {
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(e instanceof Error ? e.message : 'Something went wrong.');
    }
  };
  return (
    <section class="card contact-devices" data-testid="contact-devices" data-user={user}>
      <h3>{name === 'You' ? 'Your devices' : `${name}'s devices`}</h3>
      {unavailable && devices === null ? (
        <p class="muted">Encryption is not available on this device.</p>
      ) : devices === null ? (
        <p class="muted" role="status">Loading devices…</p>
      ) : devices.length === 0 ? (
        <p class="muted" data-testid="no-devices">{name} has no device that can read encrypted messages yet.</p>
      ) : (
        devices.map((d) => (
          <DeviceRow
            key={d.id}
            device={d}
            name={name}
            onVerify={() => void run(() => store.e2e.requestVerification(user, d.id))}
            onMark={() =>
              void store
                .ask({
                  title: `Mark ${name}'s device ${d.id} as verified?`,
                  body: `Do this only if ${name} told you the same key (${fingerprintGroups(d.fingerprint).join(' ')}) in person or over a call you trust.`,
                  confirm: 'Mark as verified',
                })
                .then((ok) => void (ok && run(() => store.e2e.markVerified(user, d.id))))
            }
          />
        ))
      )}
      {error && (
        <div class="form-error" role="alert">
          {error}
        </div>
      )}
      <p class="settings-note devices-note">
        Verify a device to be sure your messages reach {name} and nobody else: compare emoji with them, or compare the key they see under Settings → Encryption.
      </p>
    </section>
  );
}

function DeviceRow(props: { device: ContactDevice; name: string; onVerify: () => void; onMark: () => void }) {
  const { device: d } = props;
  return (
    <div class="device-row" data-testid="contact-device" data-device-id={d.id} data-verified={d.verified ? 'true' : 'false'}>
      <div class="device-row-head">
        <span class="device-name">Device {d.id}</span>
        {d.verified ? (
          <span class="device-status verified" data-testid="device-status">
            <VerifiedIcon size={16} /> Verified
          </span>
        ) : (
          <span class="device-status unverified" data-testid="device-status">
            Not verified
          </span>
        )}
      </div>
      <code class="device-fingerprint" data-testid="device-fingerprint" aria-label={`Key of device ${d.id}`}>
        {fingerprintGroups(d.fingerprint).join(' ')}
      </code>
      {!d.verified && (
        <div class="device-actions">
          <button class="secondary small" data-testid="device-verify" onClick={props.onVerify}>
            Verify by emoji
          </button>
          <button class="text-btn" data-testid="device-mark-verified" onClick={props.onMark}>
            Mark as verified
          </button>
        </div>
      )}
    </div>
  );
}

/**
 * Above an encrypted chat's messages while someone in it, of whom this
 * device verified a device, has one it has not verified.
 */
export function UnverifiedWarning(props: { store: AppStore; model: ChatModel; onReview: (user: number) => void }) {
  const { store, model } = props;
  const people = store.unverifiedDevicesIn(model);
  if (people.length === 0) return null;
  return (
    <>
      {people.map(({ user, devices }) => {
        const name = store.userName(model, user);
        return (
          <div class="banner unverified-banner" role="alert" data-testid="unverified-warning" data-user={user} key={user}>
            <WarningIcon size={22} />
            <div class="unverified-text">
              <div class="banner-title">
                {devices.length === 1 ? `${name} has a new device that you have not verified` : `${name} has ${devices.length} new devices that you have not verified`}
              </div>
              <div class="banner-sub">
                Messages you send here can be read on {devices.length === 1 ? 'it' : 'them'}. If {name} did not log in somewhere new, someone else may have.
              </div>
            </div>
            <button class="text-btn" data-testid="review-devices" onClick={() => props.onReview(user)}>
              Review devices
            </button>
          </div>
        );
      })}
    </>
  );
}

/** The title of the dialog, its text, and its buttons, by state. */
function flowText(v: VerificationView, name: string, own = false): { title: string; body: string } {
  if (own) return ownFlowText(v);
  const device = v.device ? `device ${v.device}` : 'their device';
  switch (v.state) {
    case 'requested':
      return {
        title: `${name} wants to verify this device`,
        body: `${name} asks from ${device}. Accept to compare emoji on both screens; decline if you do not expect it.`,
      };
    case 'waiting':
      return { title: `Verify ${name}'s ${device}`, body: `Waiting for ${name} to accept on that device…` };
    case 'starting':
      return { title: `Verify ${name}'s ${device}`, body: 'Exchanging keys…' };
    case 'comparing':
      return {
        title: 'Compare emoji',
        body: `Check that ${name}'s screen shows the same emoji, in the same order.`,
      };
    case 'confirmed':
      return { title: 'Compare emoji', body: `Waiting for ${name} to confirm…` };
    case 'done':
      return { title: 'Verified', body: `${name}'s ${device} is verified: you both saw the same emoji.` };
    case 'cancelled':
      return { title: 'Not verified', body: cancelText(v, name) };
  }
}

/** The same with one's own other device (a second browser, the CLI): "Your other device (Device 5) wants to verify this device". */
function ownFlowText(v: VerificationView): { title: string; body: string } {
  const device = v.device ? `device ${v.device}` : 'other device';
  switch (v.state) {
    case 'requested':
      return {
        title: `Your other device${v.device ? ` (Device ${v.device})` : ''} wants to verify this device`,
        body: 'Accept to compare emoji on both screens; decline if you did not ask for it on that device.',
      };
    case 'waiting':
      return { title: `Verify your ${device}`, body: 'Waiting for you to accept on that device…' };
    case 'starting':
      return { title: `Verify your ${device}`, body: 'Exchanging keys…' };
    case 'comparing':
      return { title: 'Compare emoji', body: 'Check that your other device shows the same emoji, in the same order.' };
    case 'confirmed':
      return { title: 'Compare emoji', body: 'Waiting for your other device to confirm…' };
    case 'done':
      return { title: 'Verified', body: `Your ${device} is verified: both showed the same emoji.` };
    case 'cancelled':
      return { title: 'Not verified', body: cancelText(v, 'Your other device') };
  }
}

/** Why a flow ended, in plain words. */
function cancelText(v: VerificationView, name: string): string {
  const c = v.cancel;
  if (!c) return 'The verification was cancelled.';
  switch (c.code) {
    case 'm.mismatched_sas':
      return c.byUs
        ? `You said the emoji don't match, so nothing was verified. If you compared them with ${name} directly, someone may be interfering with your messages.`
        : `${name} said the emoji don't match, so nothing was verified.`;
    case 'm.timeout':
      return 'The verification timed out before it was finished. Nothing was verified.';
    case 'm.user':
      if (c.declined) return c.byUs ? 'You declined the verification.' : `${name} declined the verification.`;
      return c.byUs ? 'You cancelled the verification. Nothing was verified.' : `${name} cancelled the verification. Nothing was verified.`;
    case 'm.accepted':
      return 'The verification was answered on another device.';
    default:
      return `The verification was cancelled: ${c.reason || c.code}.`;
  }
}

/**
 * The verification under way (or just ended) with someone's device, over
 * everything: a request to accept or decline, the emoji to compare, the
 * outcome. One flow at a time, the newest.
 */
export function VerificationDialog(props: { store: AppStore }) {
  const { store } = props;
  const flows = [...store.e2e.verifications.values()];
  const v = flows[flows.length - 1];
  const box = useRef<HTMLDivElement>(null);
  const [busy, setBusy] = useState(false);
  const state = v?.state;
  const flowId = v?.flowId;
  useLayoutEffect(() => {
    if (!flowId) return;
    box.current?.querySelector<HTMLElement>('[data-autofocus]')?.focus();
  }, [flowId, state]);
  if (!v) return null;
  const user = harkUserId(v.user);
  const name = user === null ? 'Someone' : store.nameOf(user);
  const { title, body } = flowText(v, name, user === store.me.id);
  const act = (f: () => Promise<void>) => {
    setBusy(true);
    f()
      .catch((e) => console.warn('hark: verification', e))
      .finally(() => setBusy(false));
  };
  const cancel = () => act(() => store.e2e.cancelVerification(v.flowId));
  const close = () => store.e2e.dismissVerification(v.flowId);
  const ended = v.state === 'done' || v.state === 'cancelled';
  return (
    <div class="modal-backdrop">
      <div
        class="modal confirm verification"
        role="dialog"
        aria-modal="true"
        aria-labelledby="verification-title"
        aria-describedby="verification-body"
        data-testid="verification"
        data-state={v.state}
        data-flow={v.flowId}
        ref={box}
        onKeyDown={(e) => {
          if (e.key === 'Tab') {
            // Focus stays in the dialog while it is open.
            const buttons = [...(box.current?.querySelectorAll<HTMLElement>('button:not(:disabled)') ?? [])];
            const i = buttons.indexOf(document.activeElement as HTMLElement);
            e.preventDefault();
            buttons[(i + (e.shiftKey ? buttons.length - 1 : 1)) % buttons.length]?.focus();
            return;
          }
          if (e.key !== 'Escape') return;
          e.preventDefault();
          if (ended) close();
          else cancel();
        }}
      >
        <h2 id="verification-title" class="verification-title" dir="auto">
          {v.state === 'done' && <VerifiedIcon size={22} />}
          {title}
        </h2>
        <p id="verification-body" data-testid="verification-message" dir="auto">
          {body}
        </p>
        {(v.state === 'comparing' || v.state === 'confirmed') && v.emoji && (
          <>
            <ol class="sas-emoji" data-testid="sas-emoji-list" aria-label="Emoji to compare">
              {v.emoji.map((e, i) => (
                <li key={i} data-testid="sas-emoji" data-name={e.name}>
                  <span class="sas-symbol" aria-hidden="true">{e.symbol}</span>
                  <span class="sas-name">{e.name}</span>
                </li>
              ))}
            </ol>
            {v.decimals && v.decimals.length > 0 && (
              <p class="sas-decimals">
                Or compare these numbers: <span data-testid="sas-decimals">{v.decimals.map((n) => String(n).padStart(4, '0')).join(' ')}</span>
              </p>
            )}
          </>
        )}
        <div class="confirm-actions">
          {v.state === 'requested' && (
            <>
              <button class="secondary" data-testid="verify-decline" disabled={busy} onClick={cancel}>
                Decline
              </button>
              <button class="primary" data-testid="verify-accept" data-autofocus disabled={busy} onClick={() => act(() => store.e2e.acceptVerification(v.flowId))}>
                Accept
              </button>
            </>
          )}
          {v.state === 'comparing' && (
            <>
              <button class="secondary danger" data-testid="sas-mismatch" disabled={busy} onClick={() => act(() => store.e2e.cancelVerification(v.flowId, 'm.mismatched_sas'))}>
                They don't match
              </button>
              <button class="primary" data-testid="sas-match" data-autofocus disabled={busy} onClick={() => act(() => store.e2e.confirmVerification(v.flowId))}>
                They match
              </button>
            </>
          )}
          {(v.state === 'waiting' || v.state === 'starting' || v.state === 'confirmed') && (
            <button class="secondary" data-testid="verify-cancel" data-autofocus disabled={busy} onClick={cancel}>
              Cancel
            </button>
          )}
          {ended && (
            <button class="primary" data-testid="verify-close" data-autofocus onClick={close}>
              {v.state === 'done' ? 'Done' : 'Close'}
            </button>
          )}
        </div>
      </div>
    </div>
  );
}
