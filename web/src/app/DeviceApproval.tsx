// Approving new devices (docs/protocol.md "Approving new devices"): the
// setting that makes new logins of the account wait, and the question an
// approved device asks when one does ("A new login, … wants to use your
// account": Approve, or "It wasn't me" to log it out). Every open device of
// the account asks; one answering clears the others (`device_approved`, or
// the login gone from the devices list).

import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { DeviceId } from '../hark-client';
import type { AppStore } from './store';
import { errorText } from './ui';

/** How often a question on screen checks that its login still waits. */
const RECHECK_MS = 30_000;

/** When a login happened, in words ("today at 14:02", or the date). */
function when(ms: number): string {
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === new Date().toDateString() ? `today at ${time}` : `${d.toLocaleDateString()} at ${time}`;
}

/**
 * Over everything while a login of this account waits for approval (the
 * oldest first): who it is, when, and the two answers.
 */
export function ApprovalPrompt(props: { store: AppStore }) {
  const { store } = props;
  const device = store.approvals.values().next().value;
  const box = useRef<HTMLDivElement>(null);
  const [busy, setBusy] = useState<'approve' | 'refuse' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const id = device?.id;
  useLayoutEffect(() => {
    if (id === undefined) return;
    setBusy(null);
    setError(null);
    const before = document.activeElement as HTMLElement | null;
    // The safe answer first: Enter pressed by habit logs the stranger out rather than letting them in.
    box.current?.querySelector<HTMLElement>('[data-testid=approval-refuse]')?.focus();
    return () => {
      if (document.activeElement === document.body || box.current?.contains(document.activeElement)) before?.focus?.();
    };
  }, [id]);
  // A login logged out elsewhere (its own "Cancel", or another device of
  // mine) tells nobody: the devices list says so. Asked on every reconnect
  // (AppStore), and here when the page is looked at again and now and then
  // while the question shows.
  useEffect(() => {
    if (id === undefined) return;
    const check = () => {
      if (document.visibilityState === 'visible') void store.checkApprovals();
    };
    const timer = setInterval(check, RECHECK_MS);
    document.addEventListener('visibilitychange', check);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', check);
    };
  }, [store, id]);
  if (!device) return null;
  const act = (kind: 'approve' | 'refuse', f: (id: DeviceId) => Promise<void>) => {
    setBusy(kind);
    setError(null);
    f(device.id).catch((e) => {
      if (store.refused(e)) return;
      setBusy(null);
      setError(errorText(e, 'account'));
    });
  };
  return (
    <div class="modal-backdrop">
      <div
        class="modal confirm approval"
        role="alertdialog"
        aria-modal="true"
        aria-labelledby="approval-title"
        aria-describedby="approval-body"
        data-testid="approval-prompt"
        data-device-id={device.id}
        ref={box}
        onKeyDown={(e) => {
          if (e.key !== 'Tab') return;
          // Focus stays in the dialog while it is open.
          const buttons = [...(box.current?.querySelectorAll<HTMLElement>('button:not(:disabled)') ?? [])];
          const i = buttons.indexOf(document.activeElement as HTMLElement);
          e.preventDefault();
          buttons[(i + (e.shiftKey ? buttons.length - 1 : 1)) % buttons.length]?.focus();
        }}
      >
        <h2 id="approval-title" dir="auto" data-testid="approval-title">
          A new login, <strong dir="auto">{device.name}</strong>, wants to use your account
        </h2>
        <p id="approval-body">
          It logged in {when(device.created_at)} and waits for you. Approve it only if it was you: it will then read your chats and
          messages. If it wasn't, it is logged out, and changing your password is a good idea.
        </p>
        {store.approvals.size > 1 && <p class="approval-more">{store.approvals.size - 1} more waiting after this one.</p>}
        {error && (
          <p class="form-error" role="alert" data-testid="approval-error">
            {error}
          </p>
        )}
        <div class="confirm-actions">
          <button class="secondary danger" data-testid="approval-refuse" disabled={busy !== null} onClick={() => act('refuse', (d) => store.refuseDevice(d))}>
            {busy === 'refuse' ? 'Logging out…' : "It wasn't me"}
          </button>
          <button class="primary" data-testid="approval-approve" disabled={busy !== null} onClick={() => act('approve', (d) => store.approveDevice(d))}>
            {busy === 'approve' ? 'Approving…' : 'Approve'}
          </button>
        </div>
      </div>
    </div>
  );
}

/** Settings: "Require approval for new logins", on or off (for the whole account). */
export function DeviceApprovalSetting(props: { store: AppStore }) {
  const { store } = props;
  const [required, setRequired] = useState<boolean | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    store.api.deviceApproval().then(
      (a) => setRequired(a.required),
      (e) => {
        if (!store.refused(e)) setError(errorText(e, 'account'));
      },
    );
  }, [store]);
  const change = async (on: boolean) => {
    // Shown at once; back as it was if the server refuses.
    setRequired(on);
    setBusy(true);
    setError(null);
    try {
      setRequired((await store.api.setDeviceApproval(on)).required);
    } catch (e) {
      if (store.refused(e)) return;
      setRequired(!on);
      setError(errorText(e, 'account'));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="device-approval" data-testid="device-approval" data-required={required === null || busy ? undefined : String(required)}>
      <label class="settings-row device-approval-row">
        <span class="device-approval-text">
          <span>Require approval for new logins</span>
          <span class="muted" id="device-approval-note">
            A login on a new device waits until you approve it on a device you're already logged in on.
          </span>
        </span>
        <input
          type="checkbox"
          role="switch"
          checked={required === true}
          disabled={required === null || busy}
          aria-describedby="device-approval-note"
          data-testid="device-approval-toggle"
          onChange={(e) => void change(e.currentTarget.checked)}
        />
      </label>
      {error && (
        <p class="form-error settings-error" role="alert" data-testid="device-approval-error">
          {error}
        </p>
      )}
    </div>
  );
}
