// Notifications in the UI: the banner above the chat list that offers to
// turn them on (the browser's permission prompt comes only from its
// button), and the settings card: on or off for this device, and what
// notifications show (message previews, for all the account's devices).

import { useEffect, useState } from 'preact/hooks';
import { HarkError, type PreviewLevel } from '../hark-client';
import type { AppStore } from './store';
import { BellIcon, CloseIcon } from './ui';

const WHAT = 'Get a notification for new messages when Hark is closed.';

/** Shown until notifications are on or the person closes it. */
export function NotificationsBanner(props: { store: AppStore }) {
  const { push } = props.store;
  const shown = (push.status === 'off' || push.status === 'working') && !push.promptDismissed;
  if (!shown) return null;
  const working = push.status === 'working';
  return (
    <div class="banner notify-banner" data-testid="push-banner">
      <button class="notify-main" data-testid="push-enable" disabled={working} onClick={() => void push.enable()}>
        <span class="notify-icon" aria-hidden="true">
          <BellIcon />
        </span>
        <span>
          <span class="banner-title">{working ? 'Turning on notifications…' : 'Turn on notifications'}</span>
          <span class="banner-sub">{WHAT}</span>
        </span>
      </button>
      <button class="icon-btn small" aria-label="Not now" title="Not now" data-testid="push-dismiss" onClick={() => push.dismissPrompt()}>
        <CloseIcon />
      </button>
      {push.error && (
        <div class="notify-error" role="alert" data-testid="push-error">
          {push.error}
        </div>
      )}
    </div>
  );
}

const PREVIEWS: [PreviewLevel, string][] = [
  ['full', 'Name and message'],
  ['sender', 'Only the name'],
  ['none', 'Nothing'],
];

/** The settings card: this device's notifications, and the account's message previews. */
export function NotificationsCard(props: { store: AppStore }) {
  const { store } = props;
  const { push } = store;
  // null while loading; 'missing' when the server has no notification settings (an older server).
  const [previews, setPreviews] = useState<PreviewLevel | 'missing' | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    store.api
      .notificationSettings()
      .then((s) => setPreviews(s.previews))
      .catch((e) => setPreviews(e instanceof HarkError && e.status === 404 ? 'missing' : null));
  }, [store]);
  const choose = async (level: PreviewLevel) => {
    setError(null);
    try {
      setPreviews((await store.api.setNotificationSettings({ previews: level })).previews);
    } catch (e) {
      setError(`Could not change the previews: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  if (previews === 'missing') {
    return (
      <section class="settings-card" data-testid="notification-settings">
        <h3>Notifications</h3>
        <p class="settings-note">This server does not send notifications.</p>
      </section>
    );
  }
  return (
    <section class="settings-card" data-testid="notification-settings">
      <h3>Notifications</h3>
      <div class="settings-row">
        <span>Notifications on this device</span>
        <DeviceSwitch store={store} />
      </div>
      <p class="settings-note" data-testid="push-status">
        {statusNote(store)}
      </p>
      {push.error && (
        <p class="form-error settings-error" role="alert" data-testid="push-error">
          {push.error}
        </p>
      )}
      {previews !== null && (
        <label class="settings-row">
          <span>Message previews</span>
          <select value={previews} data-testid="previews" onChange={(e) => void choose(e.currentTarget.value as PreviewLevel)}>
            {PREVIEWS.map(([v, label]) => (
              <option value={v} key={v}>
                {label}
              </option>
            ))}
          </select>
        </label>
      )}
      {previews !== null && <p class="settings-note">Who wrote and what, in notifications on all your devices. "Nothing" shows only "New message".</p>}
      {error && (
        <p class="form-error settings-error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

function DeviceSwitch(props: { store: AppStore }) {
  const { push } = props.store;
  switch (push.status) {
    case 'on':
      return (
        <button class="secondary" data-testid="push-toggle" onClick={() => void push.disable()}>
          Turn off
        </button>
      );
    case 'off':
      return (
        <button class="secondary" data-testid="push-toggle" onClick={() => void push.enable()}>
          Turn on
        </button>
      );
    case 'working':
      return (
        <button class="secondary" data-testid="push-toggle" disabled>
          …
        </button>
      );
    default:
      return null;
  }
}

function statusNote(store: AppStore): string {
  switch (store.push.status) {
    case 'on':
      return 'On: new messages notify you on this device even when Hark is closed.';
    case 'blocked':
      return "Blocked in this browser. Allow notifications for this site in the browser's site settings, then turn them on here.";
    case 'unsupported':
      return window.isSecureContext
        ? 'This browser cannot show notifications when Hark is closed.'
        : 'Notifications need Hark to be opened over https.';
    default:
      return WHAT;
  }
}
