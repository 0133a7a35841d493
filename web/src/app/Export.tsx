// Settings → Export my data: ask the server for a zip archive of what it
// keeps about this account, watch it being prepared (asked every 2 s while
// pending), then download it with the token (a blob: URL and an
// `<a download>`, since the route needs the Authorization header) until it
// expires; a failed one can be asked for again.

import { useEffect, useState } from 'preact/hooks';
import { HarkError, type DataExport } from '../hark-client';
import { humanSize } from './media';
import type { AppStore } from './store';
import { errorText, when } from './ui';

/** How often a pending export is asked about. */
const POLL_MS = 2_000;

export function ExportCard(props: { store: AppStore }) {
  const { store } = props;
  // undefined while asking, null when there is none.
  const [latest, setLatest] = useState<DataExport | null | undefined>(undefined);
  const [busy, setBusy] = useState<'request' | 'download' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [now, setNow] = useState(() => Date.now());

  const fetchLatest = () =>
    store.api.latestExport().then(
      (e) => {
        setLatest(e);
        setNow(Date.now());
      },
      (e) => {
        if (store.refused(e)) return;
        setLatest((l) => (l === undefined ? null : l));
        setError(errorText(e, 'export'));
      },
    );
  useEffect(() => void fetchLatest(), [store]);

  // Pending: ask again every 2 s while the card is shown.
  const pending = latest?.status === 'pending';
  useEffect(() => {
    if (!pending) return;
    let live = true;
    let timer: ReturnType<typeof setTimeout>;
    const tick = () => {
      timer = setTimeout(async () => {
        try {
          const e = await store.api.latestExport();
          if (!live) return;
          setLatest(e);
          setNow(Date.now());
          setError(null);
          if (e?.status === 'pending') tick();
        } catch (e) {
          if (!live || store.refused(e)) return;
          // Offline for a moment: keep asking.
          tick();
        }
      }, POLL_MS);
    };
    tick();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [pending, latest?.id, store]);

  async function request() {
    setBusy('request');
    setError(null);
    try {
      setLatest(await store.api.requestExport());
      setNow(Date.now());
    } catch (e) {
      if (!store.refused(e)) setError(errorText(e, 'export'));
    } finally {
      setBusy(null);
    }
  }

  async function download(e: DataExport) {
    setBusy('download');
    setError(null);
    try {
      const { blob, name } = await store.api.exportArchive(e.id);
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = name ?? `hark-export-${new Date(e.requested_at).toISOString().slice(0, 10)}.zip`;
      a.rel = 'noopener';
      document.body.appendChild(a);
      a.click();
      a.remove();
      // The download has taken the bytes by then.
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      if (store.refused(err)) return;
      if (err instanceof HarkError && err.status === 404) {
        setError('This archive is no longer on the server. Ask for a new export.');
        void fetchLatest();
      } else setError(errorText(err, 'export'));
    } finally {
      setBusy(null);
    }
  }

  const expired = latest?.status === 'ready' && latest.expires_at !== null && latest.expires_at <= now;
  const state = latest === undefined ? 'loading' : latest === null ? 'none' : expired ? 'expired' : latest.status;
  const requestButton = (label: string, testid = 'export-request') => (
    <button class="secondary small" data-testid={testid} disabled={busy !== null} onClick={() => void request()}>
      {busy === 'request' ? 'Asking…' : label}
    </button>
  );
  return (
    <section class="settings-card export-card" data-testid="export-card" data-status={state}>
      <h3>Export my data</h3>
      <p class="settings-note export-what">
        A zip archive of what this server keeps about you: your profile and settings, devices, contacts and blocked list, your chats, the messages you sent and
        their files. Preparing it can take a few minutes; you can leave this page meanwhile. It can be downloaded for seven days.
      </p>
      {state === 'loading' && <p class="settings-note">Loading…</p>}
      {state === 'none' && <div class="settings-row">{requestButton('Request export')}</div>}
      {state === 'pending' && latest && (
        <div class="settings-row export-status" role="status" data-testid="export-pending">
          <span class="export-line">
            <span class="export-spinner" aria-hidden="true" />
            <span>Preparing your archive… asked {when(latest.requested_at)}</span>
          </span>
        </div>
      )}
      {state === 'ready' && latest && (
        <>
          <div class="settings-row export-status" data-testid="export-ready">
            <span class="export-line">
              <span>
                Ready{latest.size !== null ? ` · ${humanSize(latest.size)}` : ''}
                {latest.expires_at !== null && (
                  <>
                    <br />
                    <span class="muted" data-testid="export-expires">
                      Available until {when(latest.expires_at)}
                    </span>
                  </>
                )}
              </span>
            </span>
            <button class="primary small-primary" data-testid="export-download" disabled={busy !== null} onClick={() => void download(latest)}>
              {busy === 'download' ? 'Downloading…' : 'Download'}
            </button>
          </div>
          <div class="settings-row">
            <span class="muted">Made {when(latest.finished_at ?? latest.requested_at)}.</span>
            {requestButton('New export')}
          </div>
        </>
      )}
      {state === 'expired' && latest && (
        <div class="settings-row" data-testid="export-expired">
          <span class="muted">Your last export expired {when(latest.expires_at!)}.</span>
          {requestButton('Request export')}
        </div>
      )}
      {state === 'failed' && latest && (
        <div class="settings-row" data-testid="export-failed">
          <span class="export-failed-text">The export could not be prepared.</span>
          {requestButton('Try again', 'export-retry')}
        </div>
      )}
      {error && (
        <p class="form-error settings-error" role="alert" data-testid="export-error">
          {error}
        </p>
      )}
    </section>
  );
}
