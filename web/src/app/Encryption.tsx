// End-to-end encryption in the UI: the settings card with this device's key
// (its Ed25519 identity key, in groups of four characters), the banner that
// says when this device cannot take part in encrypted chats, and the lock
// that marks encrypted chats. The library loads once the session connects
// (web/src/crypto); the card says so while that takes, and why if it fails.

import { fingerprintGroups, STATUS_REASON } from '../crypto';
import type { AppStore } from './store';

export function EncryptionCard(props: { store: AppStore }) {
  const status = props.store.e2e.status;
  return (
    <section class="settings-card" data-testid="encryption">
      <h3>Encryption</h3>
      <dl class="device-key">
        <dt>This device's key</dt>
        <dd>
          {status.state === 'loading' && (
            <span class="muted" role="status" data-testid="device-key-loading">
              Loading encryption…
            </span>
          )}
          {status.state === 'other_tab' && (
            <span class="muted" role="status" data-testid="device-key-other-tab">
              {STATUS_REASON.other_tab}
            </span>
          )}
          {status.state === 'ready' && <code data-testid="device-key">{fingerprintGroups(status.fingerprint).join(' ')}</code>}
          {status.state === 'failed' && (
            <span class="device-key-error" role="alert" data-testid="device-key-error">
              Encryption could not start on this device: {status.reason}. Reload the page to try again.
            </span>
          )}
          {status.state === 'conflict' && (
            <span class="device-key-error" role="alert" data-testid="device-key-conflict">
              {STATUS_REASON.conflict}
            </span>
          )}
        </dd>
      </dl>
      <p class="settings-note">
        The public key that identifies this browser in encrypted chats. Its private half never leaves this browser. New one-to-one chats are end-to-end encrypted: only
        the people in them can read their messages, not the server.
      </p>
    </section>
  );
}

/**
 * Above the chat list when this device cannot take part in encrypted
 * chats: its keys were lost (log out and in: a new device), or another tab
 * holds them.
 */
export function EncryptionBanner(props: { store: AppStore }) {
  const { state } = props.store.e2e.status;
  if (state === 'conflict') {
    return (
      <div class="banner e2e-banner danger" role="alert" data-testid="e2e-conflict">
        <LockIcon size={20} />
        <div>
          <div class="banner-title">Encrypted chats don't work on this device</div>
          <div class="banner-sub">{STATUS_REASON.conflict}</div>
        </div>
        <button class="text-btn" data-testid="e2e-conflict-logout" onClick={() => void props.store.logout()}>
          Log out
        </button>
      </div>
    );
  }
  if (state === 'other_tab') {
    return (
      <div class="banner e2e-banner" role="status" data-testid="e2e-other-tab">
        <LockIcon size={20} />
        <div>
          <div class="banner-title">Encryption is active in another tab</div>
          <div class="banner-sub">Encrypted messages are read in the other Hark tab of this browser. Close it to read them here.</div>
        </div>
      </div>
    );
  }
  return null;
}

/** A padlock: end-to-end encrypted. */
export function LockIcon(props: { size?: number; title?: string }) {
  const size = props.size ?? 14;
  return (
    <svg class="lock-icon" viewBox="0 0 24 24" width={size} height={size} aria-hidden={props.title ? undefined : 'true'} role={props.title ? 'img' : undefined} aria-label={props.title}>
      <path
        fill="currentColor"
        d="M17 8h-1V6a4 4 0 1 0-8 0v2H7a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V10a2 2 0 0 0-2-2zm-5 9a2 2 0 1 1 0-4 2 2 0 0 1 0 4zm3.1-9H8.9V6a3.1 3.1 0 1 1 6.2 0v2z"
      />
    </svg>
  );
}
